// The print page's "Print or save as PDF" button (inline scripts are refused by the content security policy).
document.addEventListener("click", function (event) {
  var target = event.target;
  if (target && target.matches && target.matches("[data-print]")) {
    event.preventDefault();
    window.print();
  }
});
